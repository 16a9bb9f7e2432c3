"""Every key lenet-search stores: trial and study attributes, curve points, the export
document and metrics.json. Readers and writers go through the typed records of this package,
which take their keys from here."""

# ruff: noqa: E501

# -- trial attributes --------------------------------------------------------------------------
CONFIG = "config"  # TrainConfig.to_dict() of what the trial trains
TARGET = "target"  # the study's target validation accuracy
SEED = "seed"
DEVICE = "device"
THREADS = "threads"  # torch CPU threads (0: not a CPU trial)
DATA_CHECKSUM = "data_checksum"
VERSIONS = "versions"  # library versions (search.records.provenance)
BASELINE = "baseline"  # True on the trial that trains the study's baseline (search/sampling/scheduled.py)
WARM_START = "warm_start"  # on a trial that trains another study's schedule: which (search/run/warm.py)
CURVE = "curve"  # a curve point (below) at every evaluation, written as training goes
BEST_VAL_ACCURACY = "best_val_accuracy"
EPOCHS = "epochs"
TRAIN_SECONDS = "train_seconds"  # measured training seconds
CLOCK_SECONDS = "clock_seconds"  # the same training in the study's clock
SECONDS_TO_TARGET = "seconds_to_target"  # in the study's clock: the trial's value
MEASURED_SECONDS_TO_TARGET = "measured_seconds_to_target"  # read off the wall clock
EPOCHS_TO_TARGET = "epochs_to_target"
IMAGES_TO_TARGET = "images_to_target"
CAPPED_AT = "capped_at"  # cannot win: its time to target is at least this (search/sampling/capped.py)
LANE = "lane"  # its lane in the study's schedule (search/run/schedule.py)
LANE_START = "lane_start"  # the lane's time (study clock, evaluations included) when it started
LANE_END = "lane_end"  # the lane's time when it ended
HORIZON = "horizon"  # the lane's time of its next evaluation not yet decided (its end, once ended)
ABANDONED = "abandoned"  # its executor stopped (interrupted): another takes it over at once
TAKEN_OVER = "taken_over"  # how many times another executor took it over (its claim's generation)
OUTCOME = "outcome"  # reached | budget | diverged | a pruner rule | out_of_memory | interrupted | surplus
REASON = "reason"  # one sentence: why it ended so

# -- curve points: EvalRecord's fields (lenet/curve.py), and the study clock's seconds -----------
POINT_EPOCH = "epoch"
POINT_STEP = "step"
POINT_IMAGES = "images"
POINT_TRAIN_SECONDS = "train_seconds"  # measured
POINT_WALL_SECONDS = "wall_seconds"  # measured, evaluation included
POINT_LR = "lr"
POINT_TRAIN_ACCURACY = "train_accuracy"
POINT_VAL_ACCURACY = "val_accuracy"
POINT_CLOCK_SECONDS = CLOCK_SECONDS  # training so far in the study's clock

# -- study attributes --------------------------------------------------------------------------
STUDY_SCHEMA = "schema"  # the version of these formats the study was created with (search/records/upgrade.py)
STUDY_TARGET = "target"
STUDY_TARGET_SOURCE = "target_source"
STUDY_OBJECTIVE = "objective"
STUDY_INTERMEDIATE_VALUES = "intermediate_values"
STUDY_SPACE = "space"  # search.space.SearchSpace.to_dict(), with these keys:
SPACE_MAX_EPOCHS = "max_epochs"
SPACE_EVALS_PER_EPOCH = "evals_per_epoch"  # added at e87432a (search/records/upgrade.py)
SPACE_PARAMS = "params"  # by name: search.space.param_to_dict()
STUDY_DEVICE = "device"
STUDY_THREADS = "threads"
STUDY_DATA_CHECKSUM = "data_checksum"
STUDY_SEED = "seed"
STUDY_CREATED = "created"
STUDY_BASELINE = "baseline"  # the baseline trial's parameters (search/sampling/scheduled.py)
STUDY_WARM_START = "warm_start"  # the first trials' schedules, from another study: a list of
WARM_PARAMS = "params"  # ... their parameters
WARM_SOURCE = "source"  # ... and which trial of which study they were
STUDY_HARDWARE = "hardware"  # lenet.device.hardware(): device name and count, CUDA and cuDNN versions
STUDY_JOBS = "jobs"  # worker processes of the run that created it
STUDY_LANES = "lanes"  # lanes of its schedule (search/run/schedule.py): fixed when it is created
STUDY_POPULATION = "population"  # members a population trains as one model (lenet/members.py); 1: solo runs
STUDY_CLOCK = "clock"  # "calibrated" or "measured": what a trial's seconds are
STUDY_CLOCK_TABLE = "clock_table"  # lenet.clock.StepClock.to_dict(), for the calibrated clock
STUDY_WAITED = "waited:"  # + an executor's id: the wall seconds it waited for other lanes
STUDY_CONFIRMATION = "confirmation"  # search.confirm.Confirmation.to_dict(): the race on fresh seeds
STUDY_CONFIRMATION_CLAIM = "confirmation_claim"  # who races it (search/confirm/lease.py), with these keys:
CLAIM_GENERATION = "generation"  # ... the generation of its claim (search/study/claims.py)
CLAIM_OWNER = "owner"  # ... the claim's owner: host:pid:random
CLAIM_BEAT = "beat"  # ... its last heartbeat, in the database's clock (UTC, ISO 8601)
CLAIM_RELEASED = "released"  # ... true once it stopped racing (done or interrupted): free at once

# -- the export document (`lenet-search export`, read back by `train --config`) ---------------
EXPORT_FORMAT_KEY = "format"
EXPORT_CONFIG = "config"  # TrainConfig.to_dict(), every field
EXPORT_METRICS = "metrics"
EXPORT_STUDY = "study"
EXPORT_CLOCK = "clock"  # the study's step clock (lenet.clock.StepClock.to_dict()), or null
EXPORT_CONFIRMATION = "confirmation"  # the trial's times on the confirmation's seeds, or null
EXPORT_PROVENANCE = "provenance"
# within "metrics": how the trial ended, under its trial attributes' keys (TrialResult's)
# within "study"
EXPORTED_STUDY_NAME = "name"
EXPORTED_STUDY_STORAGE = "storage"
EXPORTED_STUDY_TRIAL = "trial"
EXPORTED_STUDY_STATE = "state"
EXPORTED_STUDY_TARGET = "target"
EXPORTED_STUDY_OBJECTIVE = "objective"
EXPORTED_STUDY_CLOCK_KIND = "clock_kind"
# within "confirmation"
CONFIRMED_WINNER = "winner"
CONFIRMED_SEEDS = "seeds"
CONFIRMED_SECONDS = "seconds"  # per seed, null where not reached
CONFIRMED_AT_LEAST = "at_least"  # per seed: its time, or the cap it stopped at (null: never reached)
CONFIRMED_MEDIAN = "median"  # null: most seeds never reached the target
CONFIRMED_LOW = "low"
CONFIRMED_HIGH = "high"
CONFIRMED_EXACT = "exact"  # every time exact
CONFIRMED_MEDIAN_EXACT = "median_exact"  # added at 8c67997 (search/records/upgrade.py)
CONFIRMED_DROPPED = "dropped"
# within "provenance"
PROVENANCE_SEED = "seed"
PROVENANCE_DEVICE = "device"
PROVENANCE_THREADS = "threads"
PROVENANCE_DATA_CHECKSUM = "data_checksum"
PROVENANCE_TRIAL_VERSIONS = "trial_versions"
PROVENANCE_TRIAL_FINISHED = "trial_finished"
PROVENANCE_EXPORTED = "exported"
PROVENANCE_EXPORTED_WITH = "exported_with"

# -- metrics.json (`lenet-search train`) ---------------------------------------------------------
RUN_TEST_ACCURACY = "test_accuracy"
RUN_TEST_LOSS = "test_loss"
RUN_BEST_VAL_ACCURACY = "best_val_accuracy"
RUN_FINAL_VAL_ACCURACY = "final_val_accuracy"
RUN_TRAIN_SECONDS = POINT_TRAIN_SECONDS  # the run's measured seconds, under a curve point's name
RUN_WALL_SECONDS = POINT_WALL_SECONDS
RUN_EPOCHS = "epochs"
RUN_OUTCOME = "outcome"  # the training run's status: completed | stopped | diverged
RUN_REASON = "reason"
RUN_TARGET = "target"
RUN_SECONDS_TO_TARGET = "seconds_to_target"  # measured
RUN_EPOCHS_TO_TARGET = "epochs_to_target"
RUN_IMAGES_TO_TARGET = "images_to_target"
RUN_CLOCK_SECONDS_TO_TARGET = "clock_seconds_to_target"  # in the --config export's clock, when it has one
RUN_CONFIG = "config"
RUN_DEVICE = "device"
RUN_THREADS = "threads"
RUN_DATA = "data"  # source, checksum, val_size, split_seed
RUN_STARTED = "started"
RUN_FINISHED = "finished"
RUN_VERSIONS = "versions"
RUN_HISTORY = "history"  # EvalRecord.to_dict() at every evaluation

# -- the repriced schedules (`studies reprice --json`, read back by `optimize --warm-start`) ------
REPRICED_STUDY = "study"
REPRICED_TRAIN_SIZE = "train_size"  # training images the study's trials trained on (their steps' size)
REPRICED_CLOCK = "clock"  # the other clock, that priced them (lenet.clock.StepClock.to_dict())
REPRICED_SCHEDULES = "schedules"  # best first
# within each schedule
REPRICED_TRIAL = "trial"
REPRICED_PARAMS = "params"
REPRICED_CONFIG = "config"
REPRICED_OUTCOME = "outcome"
REPRICED_SECONDS_HERE = "seconds_here"  # in its own study's clock (null: not reached)
REPRICED_SECONDS_THERE = "seconds_there"  # in the other clock (null: never reached)
REPRICED_EXACT = "exact"  # false: seconds_there is a lower bound
REPRICED_TRAINED = "trained"  # what prices it again (search.clock.reprice.Trained.to_dict())
