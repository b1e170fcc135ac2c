"""The citizens' web pages: the chat and the transparency figures, rendered on the server."""
