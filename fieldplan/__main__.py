from fieldplan.cli import app

app(prog_name="fieldplan")
