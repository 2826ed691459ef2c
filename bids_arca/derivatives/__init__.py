"""The output folder as a BIDS derivative dataset: its description, the files of a session, and
the search for per-session files in derivative datasets (ours and others')."""
