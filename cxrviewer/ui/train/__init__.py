"""The Train dialog: the admin's training form and its run support."""
