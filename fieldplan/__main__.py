from fieldplan.cli import app

if __name__ == "__main__":  # the engine's second worker process re-imports this module
    app(prog_name="fieldplan")
