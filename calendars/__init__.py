"""iCalendar invites and feeds (issue: calendar invites and technician feeds)."""
