"""``bids-arca-node``: a DICOM node that receives studies from a PACS, routes them, runs the
participant level and sends the DICOM SEG and overlay series back (docs/node.md).

The paper's deployment (Lotan et al., AJNR 2022) lost time and studies to three things this
package is built against: no signal that a study was complete, a storage mount that dropped
silently, and cases that ended without output. Every instance is on disk (fsync) before the
sender hears "success", every study has a row in a SQLite queue that survives ``kill -9``, and
every study ends in a state with a reason: done, skipped (not a glioma protocol) or failed.
"""
