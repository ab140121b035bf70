"""Running a pretraining: config -> split -> data -> model -> trainer, resume, callbacks, devices."""
