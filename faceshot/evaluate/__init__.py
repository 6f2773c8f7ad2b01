"""Measuring faceshot on labelled data: the LFW protocol, thresholds, error rates."""
