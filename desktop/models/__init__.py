"""Model references and where their files are: demo models now; hub downloads and the store later."""
