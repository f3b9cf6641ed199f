"""`station`: the operator's command. Imports and exports returnees, organizations and resources
as CSV or XLSX through the services' HTTP APIs, and shows and operates the platform's dead
letters and backlogs (docs/station.md)."""
