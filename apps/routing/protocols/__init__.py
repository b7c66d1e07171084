"""Inbound wire protocols translated to and from ATP's OpenAI-shaped canonical format."""
