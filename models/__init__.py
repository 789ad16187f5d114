"""One module per model family. Importing this package imports no ML library."""
