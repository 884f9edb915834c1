"""Running notebooks: papermill runner, run index, parameters, the notebook-side report and
notebook hygiene. Knows notebooks as files, never their study engines."""
