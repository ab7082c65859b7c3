"""Fair play across accounts (issue 16): links between accounts, the trust score, standing."""
