"""The application: the `covenant` command line, experiments and what they write (the top layer).

    cli.py, cli_network.py      the commands (`cli.main` is the console script)
    cli_output.py               JSON summaries and rich tables
    show_mapping.py             a mapping as a loop nest
    draw.py, layout.py          graph drawings (`--png`)
    experiment.py, experiment_networks.py, runner.py   YAML-driven experiments and their runs
    results.py                  the SQLite result database
    report.py, report_networks.py                      reports and plots
"""
