"""Tests of the bureau's oversight: 约谈 and 抽查回访."""
