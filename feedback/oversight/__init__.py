"""The supervision bureau's oversight of the departments: 约谈 (talks) and 抽查回访 (re-checks)."""
