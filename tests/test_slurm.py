"""``[slurm]`` and ``--emit-slurm``: what a task asks for, what Ray gets, what runs at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_sweep import write_sweep

from simfl.config import load_scenario
from simfl.errors import ScenarioError
from simfl.sweep.grid import expand
from simfl.sweep.slurm import concurrency_summary, ray_init_for, slurm_script, task_resources

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CLIENT_RESOURCES = SCENARIOS / "sweep-client-resources.toml"
NODE = [  # 16 CPUs, 2 GPUs, 64 GiB, 2 hours
    "slurm.cpus_per_task=16",
    "slurm.gpus_per_task=2",
    "slurm.mem_gib=64",
    'slurm.time="2:00:00"',
    'slurm.partition="gpu"',
    'slurm.account="speech"',
    'slurm.sbatch=["--qos=normal"]',
    'slurm.setup=["module load cuda/12.4", "source $HOME/venvs/simfl/bin/activate"]',
]


def test_slurm_section_is_outside_the_identity():
    plain, on_node = expand(CLIENT_RESOURCES), expand(CLIENT_RESOURCES, NODE)
    assert on_node.sweep_id == plain.sweep_id
    assert [c.cell_id for c in on_node.cells] == [c.cell_id for c in plain.cells]
    assert "[slurm]" not in load_scenario(SCENARIOS / "quickstart.toml").to_toml()
    assert "cpus_per_task = 16" in load_scenario(CLIENT_RESOURCES, NODE).to_toml()


def test_script_for_a_stated_node(tmp_path):
    sweep = expand(CLIENT_RESOURCES, NODE)
    root = tmp_path / "sweeps" / sweep.sweep_id
    script = slurm_script(sweep, CLIENT_RESOURCES, NODE, 3, root, tmp_path)
    lines = script.splitlines()
    sbatch = [line for line in lines if line.startswith("#SBATCH")]
    assert sbatch == [
        f"#SBATCH --job-name=simfl-{sweep.name}",
        "#SBATCH --array=0-2",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --gres=gpu:2",
        "#SBATCH --mem=64G",
        "#SBATCH --time=2:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=speech",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --qos=normal",
        f"#SBATCH --output={root}/slurm-%A_%a.out",
    ]
    # quickstart workload: 20 clients, 10 per round; 16 CPUs give 32, 16 or 8 actors
    assert [line for line in lines if line.startswith("#   ")] == [
        "#   num_cpus=0.5: 10 clients at once (32 actors, 10 clients per round)",
        "#   num_cpus=1: 10 clients at once (16 actors, 10 clients per round)",
        "#   num_cpus=2: 8 clients at once (8 actors, 10 clients per round)",
    ]
    assert "module load cuda/12.4" in lines and lines[-1].startswith("exec simfl sweep ")
    assert lines[-1].endswith("--ray-num-cpus 16 --ray-num-gpus 2 --ray-memory-gib 64")
    assert "slurm." not in lines[-1]  # the budget travels as --ray-* options only


def test_fractional_gpu_cells_on_a_task(tmp_path):
    grid = '\n[sweep]\n"resources.num_gpus" = [0.25, 0.5]\n'
    sweep = expand(write_sweep(tmp_path, grid), ["slurm.cpus_per_task=16", "slurm.gpus_per_task=2"])
    summary = concurrency_summary(sweep, task_resources(sweep))
    assert summary[1:] == [
        "  num_cpus=1, num_gpus=0.25: 3 clients at once (8 actors, 3 clients per round)",
        "  num_cpus=1, num_gpus=0.5: 3 clients at once (4 actors, 3 clients per round)",
    ]


def test_unstated_node_falls_back_to_what_cells_need():
    task = task_resources(expand(CLIENT_RESOURCES))
    assert (task.cpus, task.gpus, task.mem_gib, task.stated) == (3, 0, None, False)


def test_ray_gets_exactly_the_task_budget():
    assert ray_init_for(16, 2, 64) == {
        "num_cpus": 16,
        "num_gpus": 2,
        "object_store_memory": 20615843020,
        "_memory": 48103633716,  # together exactly 64 GiB
    }
    assert ray_init_for(None, None, None) == {}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('slurm.time="2 hours"', "key 'slurm.time': String should match pattern"),
        ("slurm.mem_gib=-4", "key 'slurm.mem_gib': Input should be greater than 0"),
        ('slurm.sbatch=["qos=high"]', "'qos=high' is not one sbatch option"),
        ("slurm.cpu=4", "unknown key 'slurm.cpu'; allowed keys: cpus_per_task, gpus_per_task"),
    ],
)
def test_bad_slurm_values_are_one_line(override, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(CLIENT_RESOURCES, [override])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_emit_and_status_print_the_concurrency(tmp_path, cli):
    path = write_sweep(tmp_path, '\n[sweep]\n"partition.alpha" = [0.5, 1.0]\n')
    node = ["--set", "slurm.cpus_per_task=4", "--set", "slurm.gpus_per_task=0"]
    emitted = cli("sweep", str(path), *node, "--emit-slurm", "job.sbatch", cwd=tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    expected = "num_cpus=1: 3 clients at once (4 actors, 3 clients per round)"
    script = (tmp_path / "job.sbatch").read_text()
    assert expected in emitted.stdout and expected in script
    (sweep_dir,) = (tmp_path / "results" / "sweeps").iterdir()  # SLURM writes its logs here
    assert f"#SBATCH --output={sweep_dir.resolve()}/slurm-%A_%a.out" in script
    status = cli("sweep", str(path), *node, "--status", cwd=tmp_path)
    assert status.returncode == 0 and expected in status.stdout
