"""Environment for settings: any variable `X` may also come from a file `X_FILE`."""

import environ

env = environ.FileAwareEnv()
