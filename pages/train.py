"""Train: pick what to train on, a preset and a base model; launch it (and the baselines) as background jobs;
watch the loss curves of several runs side by side; the registry of trained models below."""

from __future__ import annotations

import streamlit as st

from curation import jobs
from curation.judges.evaluate import EvaluateError, EvaluateRequest, find_baseline, start_evaluation
from curation.studio_auth import Forbidden
from curation.testsets import BUILTIN
from pages import _studio as studio
from training.sft import job as train_jobs
from training.sft import report
from training.sft.export import export_for
from training.sft.presets import PRESETS, get_preset

SOURCES = {"selection": "A saved selection", "dataset": "A whole dataset", "file": "A file on the server (leads)"}

studio.page("Train")
store = studio.store()
settings = studio.settings()


def choose_source() -> train_jobs.TrainRequest | None:
    source = st.radio("Train on", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="train_source")
    if source == "selection":
        saved = store.selections.all()
        if not saved:
            st.info("No saved selection yet: make one on the Explore or Map page, or train on a whole dataset.")
            return None
        names = {s.id: s for s in saved}
        chosen = st.selectbox("Selection", list(names), key="train_selection",
                              format_func=lambda i: f"{names[i].name} — {names[i].method}, {names[i].n_kept:,} kept")
        return train_jobs.TrainRequest(selection_id=chosen, role="selection")
    if source == "dataset":
        datasets = {d.id: d for d in store.datasets.all()}
        if not datasets:
            st.info("No dataset yet: import one on the Data page.")
            return None
        chosen = st.selectbox("Dataset", list(datasets), key="train_dataset",
                              format_func=lambda i: f"{datasets[i].name} ({datasets[i].n_examples:,} examples)")
        return train_jobs.TrainRequest(dataset_id=chosen, role="dataset")
    path = st.text_input("Path on the server (a selection export or any dataset file)", key="train_file")
    return train_jobs.TrainRequest(file=path.strip(), role="file") if path.strip() else None


def choose_settings(request: train_jobs.TrainRequest) -> train_jobs.TrainRequest:
    left, right = st.columns(2)
    name = left.selectbox("Preset", list(PRESETS), key="train_preset",
                          format_func=lambda n: f"{n} — {PRESETS[n].description}")
    preset = PRESETS[name]
    base = right.text_input("Base model (Hugging Face name or folder; smollm2-135m is the bundled one)",
                            value=preset.base_model, key=f"train_base_{name}")
    with st.expander("Overrides (recorded with the run)"):
        a, b, c = st.columns(3)
        values = {
            "epochs": a.number_input("Epochs", 0.1, 100.0, float(preset.epochs), key=f"train_epochs_{name}"),
            "learning_rate": b.number_input("Learning rate", 1e-7, 1.0, preset.learning_rate, format="%.1e",
                                            key=f"train_lr_{name}"),
            "global_batch": int(c.number_input("Global batch", 1, 4096, preset.global_batch, key=f"train_gb_{name}")),
            "per_device_batch": int(a.number_input("Per-device batch", 1, 512, preset.per_device_batch,
                                                   key=f"train_pdb_{name}")),
            "max_length": int(b.number_input("Max length (tokens)", 16, 8192, preset.max_length, key=f"train_ml_{name}")),
            "lora": c.toggle("LoRA adapter (off: full fine-tuning)", value=preset.lora, key=f"train_lora_{name}"),
        }
        max_steps = int(a.number_input("Stop after N steps (0: the preset's epochs)", 0, 10**7, 0, key="train_steps"))
    overrides = {k: v for k, v in values.items() if v != getattr(preset, k)}
    request.preset, request.base_model, request.overrides = name, base.strip(), overrides
    request.max_steps = max_steps or -1
    return request


def launch_buttons(request: train_jobs.TrainRequest) -> None:
    reason = studio.may("train", "train models")
    if reason:
        st.caption(reason)
    try:
        get_preset(request.preset, request.overrides).gradient_accumulation(1)
        request = train_jobs.plan(store, request)
    except (ValueError, LookupError) as err:
        st.error(str(err))
        return
    left, right = st.columns(2)
    if left.button("Train", type="primary", disabled=reason is not None, key="train_launch"):
        start([request])
    if request.selection_id:
        size = store.selections.get(request.selection_id).n_kept
        label = f"Train the baselines: full pool and random {size:,}"
        if right.button(label, disabled=reason is not None, key="train_baselines"):
            start(train_jobs.baselines(store, request.selection_id, request.preset, request.base_model,
                                       request.overrides, request.max_steps))
    st.caption("Runs queue behind each other (one training at a time on this machine). The same run on a GPU "
               "cluster, after exporting the selection (Export page) to data.jsonl:")
    st.code(train_jobs.shell_command(train_jobs.command_for(request, "data.jsonl", "runs/my-run", "accelerate")),
            language="bash")


def start(requests: list[train_jobs.TrainRequest]) -> None:
    for request in requests:
        try:
            job_id = train_jobs.start_training(store, settings, studio.person(), request)
        except (Forbidden, ValueError, LookupError, jobs.JobError) as err:
            st.warning(str(err))
            return
        st.toast(f"Training job {job_id} queued: {request.describe()}")


def run_folders() -> dict[str, str]:
    """Train jobs, newest first: label -> output folder."""
    listed = jobs.all_jobs(store, settings, kind=train_jobs.KIND, limit=50)
    return {f"#{j.id} {j.params.get('request', {}).get('name', '')} ({j.params.get('request', {}).get('role', '')})":
            j.params["out_dir"] for j in listed if j.params.get("out_dir")}


@st.fragment(run_every=settings.studio.refresh_s)
def curves() -> None:
    st.subheader("Loss curves")
    folders = run_folders()
    if not folders:
        st.caption("No training run yet.")
        return
    picked = st.multiselect("Runs", list(folders), default=list(folders)[:3], key="train_curves_runs")
    x = st.radio("x axis", list(report.X_AXES), format_func=report.X_AXES.get, horizontal=True, key="train_curves_x")
    frame = report.metrics_frame({label: folders[label] for label in picked})
    if frame.empty:
        st.caption("Waiting for the first logged step (loading the model and data)…")
    else:
        st.plotly_chart(report.loss_figure(frame, x), key="train_curve_chart")
    for label in picked:
        where = report.progress_of(folders[label])
        if where["max_steps"] and where["step"] < where["max_steps"]:
            st.text(f"{label}: step {where['step']}/{where['max_steps']}, ETA {report.format_eta(where['eta_s'])}")


def registry() -> None:
    st.subheader("Trained models")
    models = store.models.all()
    if not models:
        st.caption("The registry is empty: every finished, cancelled or failed run is listed here.")
        return
    st.dataframe(report.registry_frame(models), hide_index=True, key="train_registry")
    done = {m.id: m for m in models if m.status == "done"}
    if not done:
        return
    with st.expander("Export a model for other tools"):
        chosen = st.selectbox("Model", list(done), key="train_export_model", format_func=lambda i: f"#{i} {done[i].name}")
        merged = st.radio("As", ["adapter", "merged"], horizontal=True, key="train_export_kind",
                          format_func={"adapter": "the LoRA adapter", "merged": "merged full weights"}.get)
        st.code(done[chosen].details.get("command", ""), language="bash")
        if st.button("Export", key="train_export"):
            try:
                with st.spinner("Exporting…"):
                    folder = export_for(store, settings, studio.person(), chosen, merged == "merged")
            except (Forbidden, ValueError, FileNotFoundError, RuntimeError) as err:
                st.warning(str(err))
            else:
                st.text(f"Written to {folder}")
    evaluate_box(done)


def evaluate_box(done: dict) -> None:
    """The loop in one click: the model and its baseline answer the test sets, the judge compares them."""
    with st.expander("Evaluate against its baseline"):
        chosen = st.selectbox("Model", list(done), key="train_eval_model", format_func=lambda i: f"#{i} {done[i].name}")
        baseline = find_baseline(store, done[chosen])
        if baseline is None:
            st.caption("No finished model with the same preset and base model trained on the full pool or the random "
                       "subset yet: train the baselines first (the button beside Train).")
            return
        st.text(f"Baseline: #{baseline.id} {baseline.name} ({baseline.role})")
        testsets = st.multiselect("Test sets", [spec.name for spec in BUILTIN], default=["vicuna80"],
                                  key="train_eval_testsets")
        st.caption(f"Both answer them here, then the {settings.judge.judge} judge ({settings.judge.model} at "
                   f"{settings.judge.base_url}) compares them in both orders; the runs land on Compare.")
        reason = studio.may("judge", "evaluate a model") or studio.may("run_paid_job", "launch a paid evaluation")
        if reason:
            st.caption(reason)
        if st.button("Evaluate", key="train_evaluate", disabled=reason is not None or not testsets):
            try:
                job_id = start_evaluation(store, settings, EvaluateRequest(model=chosen, baseline=baseline.id,
                                                                           testsets=testsets), studio.person())
            except (Forbidden, EvaluateError, jobs.JobError) as err:
                st.warning(str(err))
            else:
                st.toast(f"Job {job_id} started: evaluate #{chosen} against #{baseline.id}")


def main() -> None:
    request = choose_source()
    if request is not None:
        launch_buttons(choose_settings(request))
    curves()
    studio.job_panel((train_jobs.KIND,), heading="Training jobs", key="train_jobs")
    registry()


main()
