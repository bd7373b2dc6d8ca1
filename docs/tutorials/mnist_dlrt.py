"""Tutorial 3 — train a small MLP with DLRT on the bundled MNIST subset and read the ranks.

784 → 128 → 128 → 10, ReLU, Adam (lr 1e-3), batch 128, one epoch over the 5000 bundled training
images (1000 test images).  The two hidden weight matrices are low-rank (start rank 64) and
trained with the fixed-rank ("dlrt") or the rank-adaptive ("dlrt-adaptive") BUG integrator; the
output layer stays dense.
"""

from lowrank_ode.data import load_builtin_mnist
from lowrank_ode.dlrt import TrainConfig, Trainer

data = load_builtin_mnist()  # (x_train, y_train, x_test, y_test), images flattened in [0, 1]
print("train", data.x_train.shape, "test", data.x_test.shape)
print()

runs = [
    ("dense", None),
    ("dlrt", None),
    ("dlrt-adaptive", 0.05),
    ("dlrt-adaptive", 0.1),
    ("dlrt-adaptive", 0.15),
]
print("        method     τ | test acc |   ranks | eval params | c.r. eval % | passes/batch")
for method, tau in runs:
    cfg = TrainConfig(
        model="mlp",
        method=method,
        tau=tau,
        rank=64,
        widths=(784, 128, 128, 10),
        epochs=1,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        seed=0,
    )
    trainer = Trainer(cfg, data)
    res = trainer.fit()
    last = res["history"][-1]
    passes = len(trainer.flow.evaluations)  # forward/backward passes of the last batch
    ranks = ",".join(map(str, res["ranks"])) if method != "dense" else "—"
    print(
        f"{method:>14} {tau if tau is not None else '—':>5} | {res['test_accuracy']:8.3f} | "
        f"{ranks:>7} | {last['params_eval']:>11,} | {res['compression_eval']:11.1f} | {passes}"
    )

# the ranks are those of the factors the forward pass really uses (last run, τ = 0.15):
print()
for k, layer in enumerate(trainer.flow.lr_layers):
    shapes = f"U {layer.U.shape}, S {layer.S.shape}, V {layer.V.shape}"
    print(f"hidden layer {k}: {shapes} -> rank {layer.rank}")
