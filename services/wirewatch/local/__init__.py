"""Local mode: protocol servers on loopback and a supervisor for the services."""
