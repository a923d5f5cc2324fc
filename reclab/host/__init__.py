"""This host: child processes kept by PID, loopback ports, CPU cores and what the machine is."""
