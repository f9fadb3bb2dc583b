"""The directory (组织机构与事项): departments, halls, windows, staff, service items."""
