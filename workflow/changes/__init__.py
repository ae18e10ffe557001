"""Changing running cases: why a deadline falls on its date (``explain``), moving cases to a new
version of their definition (``migration``) and moving deadlines when the calendar changes
(``reproject``). Each recounts deadlines with the planner's own rules, so it never disagrees
with what the engine planned; none of them imports the engine."""
