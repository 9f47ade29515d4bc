"""Pure text processing and orchestration: clean → detect → segment → summarize → translate.

Nothing here talks to a broker, a database or a model file directly; models are reached
through the small interface in `pipeline.engines`.
"""
