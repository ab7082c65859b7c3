"""Step challenges with entry fees in escrow and prizes (issue 17, item 4; docs/challenges.md)."""
