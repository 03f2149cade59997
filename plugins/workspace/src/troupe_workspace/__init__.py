"""The workspace operator: VMs and containers in one isolated environment (pelotech.ot Workspace)."""
