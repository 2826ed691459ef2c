"""The GPU suite's headline figures, its goals and its text summary (``gpu_suite.py``)."""

from __future__ import annotations

# Issue 19: per session, the 3-view cascade at most 1 s and the participant level at most 20 s,
# GPU memory under 4 GB. Peers, measured on an H200 (the figures).
GOALS = {
    'cascade_3view_s': ('3-view cascade, one 1 mm session (s)', 1.0, '<='),
    'participant_session_s': ('participant level, one session (s)', 20.0, '<='),
    'gpu_peak_gb': ('GPU peak memory (GB, reserved by PyTorch)', 4.0, '<'),
}
PEERS = (
    'peers on an H200: MONAI SegResNet whole volume 0.13 s, nnU-Net sliding window 0.19 s, '
    'HD-GLIO under 10 s per exam'
)
REGIONS = ('WT', 'TC', 'ET')
ESTIMATE_METHOD = (
    'serial sum of the steps measured on the GPU machine (first call each) and one CUDA start-up, '
    'plus from the CPU run: the longest registration, the model space and writing the outputs'
)


def estimate_session(session: dict, cpu_run: dict, device: dict) -> dict:
    """Seconds of one participant session with the networks and skull stripping on the GPU.

    Steps measured on the GPU machine count once each, as the first call in the process (the
    workflow runs each once per session), plus one CUDA start-up. The steps that need ANTs,
    nipype or pybids come from the participant level run on the 2-core CPU machine by
    ``prepare``: the three registrations (they run side by side, so the longest counts), the
    model space, and writing the outputs, DICOM series and report. A serial sum otherwise: an
    upper bound, since the registrations overlap the skull stripping in the workflow.
    """
    measured = {name: times['cold_s'] for name, times in session['steps'].items()}
    steps, outputs = cpu_run['steps_s'], cpu_run['outputs_s']
    from_cpu = {}
    registrations = [v for k, v in steps.items() if k.startswith('coregistration')]
    if registrations:
        from_cpu['coregistration (longest of the three)'] = max(registrations)
    if 'model space' in steps:
        from_cpu['model space'] = steps['model space']
    if 'outputs and report' in steps:
        done_here = outputs.get('to_native', 0.0) + outputs.get('postprocessing_and_volumes', 0.0)
        from_cpu['outputs, DICOM and report'] = round(steps['outputs and report'] - done_here, 1)
    cuda_init = device.get('cuda_init_s', 0.0)
    total = sum(measured.values()) + sum(from_cpu.values()) + cuda_init
    return {
        'total_s': round(total, 1),
        'measured_here_s': measured,
        'cuda_init_s': cuda_init,
        'from_cpu_run_s': from_cpu,
        'cpu_run': f'{cpu_run["machine"]}, load average {cpu_run["load"]}',
        'method': ESTIMATE_METHOD,
    }


def gpu_peak_gb(record: dict) -> float | None:
    """The most GPU memory PyTorch held for the participant level's steps and the cascade."""
    peaks = [
        record.get('cascade', {}).get('precisions', {}).get('float32', {}),
        *record.get('session', {}).get('steps', {}).values(),
    ]
    values = [p['gpu_peak_reserved_gb'] for p in peaks if 'gpu_peak_reserved_gb' in p]
    return max(values) if values else None


def _verdict(value, goal: float, relation: str) -> str:
    if value is None:
        return 'not measured'
    met = value <= goal if relation == '<=' else value < goal
    return 'yes' if met else 'NO'


def _dice(scores: dict) -> str:
    return '/'.join(f'{scores[r]:.3f}' if r in scores else '-' for r in REGIONS)


def summary(record: dict) -> str:
    device, small = record['device'], record['small']
    lines = [
        f'bids-arca GPU suite, {record["date"]}: {device["device"]} (torch {device["torch"]}, '
        f'CUDA {device.get("cuda", "-")}), model {record["model"]["name"]}',
        f'prepared {record["prepared"]["date"]} at {record["prepared"]["commit"]}; '
        f'{record.get("wall_s", 0):.0f} s{"; SMALL DRY RUN, figures meaningless" * small}',
        '',
        f'{"figure":<44}{"measured":>10}{"goal":>8}  met',
    ]
    for key, (label, goal, relation) in GOALS.items():
        value = record.get(key)
        shown = f'{value:.2f}' if isinstance(value, float) else '-'
        lines.append(
            f'{label:<44}{shown:>10}{relation + str(goal):>8}  {_verdict(value, goal, relation)}'
        )
    lines += [PEERS, '']
    lines += _cascade_lines(record.get('cascade', {}))
    lines += _session_lines(record)
    lines += _training_lines(record)
    failed = [name for name, part in record.items() if isinstance(part, dict) and 'error' in part]
    if failed:
        lines.append('FAILED parts: ' + '; '.join(f'{n}: {record[n]["error"]}' for n in failed))
    return '\n'.join(lines) + '\n'


def _cascade_lines(cascade: dict) -> list[str]:
    if 'precisions' not in cascade:
        return []
    lines = [f'cascade on {cascade["case"]} (median of {cascade["repeat"]}; Dice WT/TC/ET):']
    for precision, entry in cascade['precisions'].items():
        line = f'  {precision:<9}{entry["median_s"]:>7.3f} s  {_dice(entry["dice"])}'
        if 'dice_change' in entry:
            change = '/'.join(f'{entry["dice_change"][r]:+.4f}' for r in entry['dice_change'])
            line += f'  change {change}  {"safe" if entry["safe"] else "NOT SAFE"}'
        lines.append(line)
    return lines


def _session_lines(record: dict) -> list[str]:
    estimate, session = record.get('participant_session'), record.get('session', {})
    if not estimate:
        return []
    here = ', '.join(f'{k} {v:.1f}' for k, v in estimate['measured_here_s'].items())
    there = ', '.join(f'{k} {v:.1f}' for k, v in estimate['from_cpu_run_s'].items())
    return [
        'participant level on the phantom session (s, first call each):',
        f'  on this machine: {here}; CUDA start {estimate["cuda_init_s"]:.1f}',
        f'  from the CPU run ({estimate["cpu_run"]}): {there}',
        f'  inputs identical to the CPU run: {session["identical_to_cpu_run"]}; Dice vs truth '
        f'{_dice(session["dice_vs_truth"])} (CPU run {_dice(session["dice_vs_truth_cpu_run"])}); '
        f'brain mask vs CPU run {session["mask_dice_vs_cpu_run"]}',
    ]


def _training_lines(record: dict) -> list[str]:
    lines = []
    rows = record.get('steptime', {}).get('rows', [])
    if rows:
        lines.append('training step (ms; float32, bfloat16):')
        for model in dict.fromkeys(r['model'] for r in rows):
            times = ', '.join(f'{r["ms_per_step"]}' for r in rows if r['model'] == model)
            lines.append(f'  {model}: {times}')
    compare = record.get('compare', {})
    if 'skipped' in compare:
        lines.append(f'comparison skipped: {compare["skipped"]}')
    elif 'summary' in compare:
        lines.append(
            f'comparison, {compare["budget_s_per_model"]:.0f} s training each (mean Dice on '
            f'held-out phantoms):'
        )
        for row in compare['summary']:
            lines.append(
                f'  {row["model"]:<6}{row["surgery"]:<8}{row["region"]:<4}{row["mean"]:>7} '
                f'(n={row["n"]})'
            )
    return lines
