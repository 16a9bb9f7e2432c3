from lenet.bench import run_benchmark
from lenet.model import LeNet5, training_flops_per_image


def test_benchmark_rows_and_speedups(synthetic_data, synthetic_archive, monkeypatch):
    monkeypatch.setenv("LENET_CACHE", str(synthetic_data.source) + ".cache")
    rows = run_benchmark(
        synthetic_data, str(synthetic_archive), [32, 128], epochs=1, naive_batch_sizes=[32], num_workers=0
    )
    assert [(r.pipeline, r.batch_size) for r in rows] == [("engine", 32), ("naive", 32), ("engine", 128)]
    engine32, naive32, engine128 = rows
    assert engine32.speedup == naive32.epoch_seconds / engine32.epoch_seconds
    assert naive32.speedup == 1.0 and engine128.speedup is None
    n = len(synthetic_data.train_x)
    for r in rows:
        assert r.epoch_seconds > 0 and len(r.epoch_times) == 1
        assert r.images_per_second == n / r.epoch_seconds
        assert abs(r.gflops - n * training_flops_per_image(LeNet5()) / r.epoch_seconds / 1e9) < 1e-9


def test_the_naive_pipeline_trains_on_the_engines_device(synthetic_data, synthetic_archive, monkeypatch):
    import lenet.bench

    seen = []

    def fake(dataset, batch_size, epochs, num_workers=2, seed=0, policy=None):
        seen.append(policy)
        return [1.0] * epochs

    monkeypatch.setattr(lenet.bench, "time_naive_epochs", fake)
    run_benchmark(synthetic_data, str(synthetic_archive), [], epochs=1, naive_batch_sizes=[64], num_workers=0)
    (policy,) = seen
    assert policy is not None and policy.device == synthetic_data.device
