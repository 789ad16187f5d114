"""Everything served over HTTP: the one server, the OpenAI-compatible API,
the Gradio UI and the file gate."""
