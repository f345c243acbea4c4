"""The ten anti-pattern seed modules (torch). Import the family modules directly."""
