"""The DuckDB warehouse: the model's SQL files (`models/`) and their builder (`build`), the marts (`marts`),
the plans file (`plans`), checks (`checks`), publication for BI tools (`publish`), the report's settings
(`settings`), the project's files and lock (`files`) and the state report (`status`)."""
