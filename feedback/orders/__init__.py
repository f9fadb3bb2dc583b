"""督办单 (supervision orders): numbered orders a supervisor issues to a department."""
