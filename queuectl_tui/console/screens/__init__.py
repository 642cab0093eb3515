"""One module per screen: the five views and the dialogs."""
