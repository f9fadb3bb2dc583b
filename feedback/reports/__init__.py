"""The monthly 通报 (bulletin): figures, PDF and XLSX, typical cases, sign-off and archive."""
