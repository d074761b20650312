"""One module per accepted input format; `app.conversation.parsers` chooses among them."""
