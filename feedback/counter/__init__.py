"""The counter (办结): window staff register completed services and hand out rating QR codes."""
