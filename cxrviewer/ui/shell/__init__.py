"""The main window and what ties the features together: menus, docks, the viewport binding, dialogs."""
