"""The hall wallboard (大屏): live satisfaction on the screen in a service hall."""
