"""Pictures of what the pretext tasks and models see."""
