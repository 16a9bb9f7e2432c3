"""Running a search: request and spec, preparing the study, the objective, workers; never imports views."""
