"""The disclosure pages (政务公开): published results, statistics, rankings and open data."""
