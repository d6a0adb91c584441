"""What a11y-caption writes into the desktop: shortcut files for GNOME, KDE and sway, the
portal's global shortcuts, autostart at login."""
