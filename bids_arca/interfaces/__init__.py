"""nipype interfaces: thin shells that read files, call plain functions and write files."""
