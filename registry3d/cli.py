"""The ``registry3d`` command line.

Every command is non-interactive and scriptable: results go to standard
output, problems to standard error as one line, and any refusal exits 1
with nothing changed.
"""

import getpass
import os
import signal
import subprocess
import sys
from functools import wraps
from pathlib import Path

import click

DEFAULT_SETTINGS = "registry3d.settings"


def setup_django() -> None:
    """Load the settings and apps; a configuration error becomes one clear line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None


def needs_django(func=None, *, check_database: bool = True):
    """Set Django up before the command runs and turn refusals into exit 1.

    Unless ``check_database`` is false, the command first checks that the
    database is reachable and migrated, so a fresh install says "run init"
    instead of printing a traceback.
    """
    if func is None:
        return lambda f: needs_django(f, check_database=check_database)

    @wraps(func)
    def wrapper(*args, **kwargs):
        setup_django()
        from django.db import DatabaseError

        from registry3d.audit.services import default_actor_label
        from registry3d.sites.errors import SiteError

        label = default_actor_label.set(f"command line ({getpass.getuser()})")
        try:
            if check_database:
                require_migrated()
            return func(*args, **kwargs)
        except SiteError as exc:
            raise click.ClickException(str(exc)) from None
        except DatabaseError as exc:
            raise click.ClickException(f"Database error: {exc}".strip()) from None
        finally:
            default_actor_label.reset(label)

    return wrapper


def require_migrated() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - any database failure is reported
        raise click.ClickException(f"Cannot reach the database: {exc}") from None
    if plan:
        raise click.ClickException(
            "The database is not set up or not up to date; run 'registry3d init' first"
        )


def progress_bar(before: str, after: str):
    """A progress bar on standard error, shown only on a terminal (scripts see no bar)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn(before),
        BarColumn(),
        TextColumn(after),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="registry3d")
def main():
    """registry3d: the clinical data registry for medical 3D printing.

    Settings come from environment variables (see the README); by default
    the registry keeps its SQLite database and secret key under ./var/.
    """


# --- init -----------------------------------------------------------------------


@main.command()
@click.option("--demo", is_flag=True, help="Add demo sites and users (never on a real registry).")
@click.option(
    "--demo-password", default=None, help="One password for all demo users instead of random ones."
)
@click.option(
    "--admin-email", default=None, help="Create a registry administrator with this e-mail."
)
@click.option("--admin-password", default=None, help="Password of that administrator.")
@needs_django(check_database=False)
def init(demo, demo_password, admin_email, admin_password):
    """Create or migrate the database and collect static files.

    Safe to run again: it applies new migrations and leaves existing data
    alone.
    """
    from django.core.management import call_command

    from registry3d.sites import services

    if bool(admin_email) != bool(admin_password):
        raise click.ClickException("--admin-email and --admin-password go together")
    # Refuse a bad address or password before the database is touched.
    if admin_email:
        services.check_new_account(admin_email, admin_password)
    if demo and demo_password:
        services.check_new_account("demo@example.org", demo_password)
    click.echo("Migrating the database…", err=True)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    _upgrade_cases()
    if admin_email:
        existing = services.User.objects.filter(email=admin_email.strip().lower()).first()
        if existing is not None:
            click.echo(f"Administrator {existing.email} exists already; left unchanged.", err=True)
        else:
            services.add_user(admin_email, admin_password, registry_role="admin")
            click.echo(f"Created administrator {admin_email.lower()}.", err=True)
    if demo:
        from registry3d.demo import load_demo

        credentials = load_demo(password=demo_password)
        _print_credentials(credentials)
        _load_demo_cases()
    click.echo("The registry is ready.", err=True)


def _load_demo_cases() -> None:
    from rich.progress import Progress

    from registry3d.demo import DEMO_CASES, load_demo_cases

    total = sum(count for count, _ in DEMO_CASES.values())
    with Progress(transient=True) as progress:
        task = progress.add_task("Demo cases", total=total)
        created = load_demo_cases(progress=lambda: progress.advance(task))
    click.echo(
        f"Created {created} demo cases." if created else "Demo cases exist already.", err=True
    )


def _print_credentials(credentials: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Demo accounts (log in at http://127.0.0.1:8000/)")
    table.add_column("E-mail", no_wrap=True)
    table.add_column("Password", no_wrap=True)
    table.add_column("Role")
    for email, password, role in credentials:
        table.add_row(email, password, role)
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 120
    console.print(table)


# --- serve and worker -------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web server processes.",
)
@click.option(
    "--with-worker/--no-worker",
    default=True,
    show_default=True,
    help="Also run the background job worker beside the web server.",
)
@needs_django
def serve(host, port, workers, with_worker):
    """Run the production web server (gunicorn), serving static files too."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    env = dict(os.environ)
    children = []
    if with_worker:
        children.append(
            subprocess.Popen([sys.executable, "-m", "registry3d.cli", "worker"], env=env)
        )
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "registry3d.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-",
            "--logger-class",
            "registry3d.lib.access_log.RedactingLogger",
            "--forwarded-allow-ips",
            os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        ],
        env=env,
    )
    children.append(gunicorn)

    def stop(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"registry3d is serving on http://{host}:{port}/", err=True)
    code = gunicorn.wait()
    stop(None, None)
    for child in children:
        child.wait()
    sys.exit(code)


@main.command()
@click.option("--batch", is_flag=True, help="Run the jobs waiting now, then exit.")
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between looks at the queue when it is empty.",
)
@needs_django
def worker(batch, interval):
    """Run background jobs (e-mails, later imports and reports) from the database queue.

    Jobs are rows in the database, so they wait there while no worker runs
    and survive a restart.
    """
    from django.core.management import call_command

    from registry3d.intake import services as intake

    # An import whose worker was killed (power cut, OOM killer, kill -9)
    # shows as interrupted, so its site sees it and can run it again.
    stopped = intake.mark_interrupted(starting=True)
    if stopped:
        click.echo(f"{stopped} import(s) had stopped before finishing; marked interrupted.")
    args = ["--interval", str(interval), "--no-startup-delay"]
    if batch:
        args.append("--batch")
    else:
        _start_sweeps()
    call_command("db_worker", *args)


SWEEP_SECONDS = 15 * 60


def _start_sweeps() -> None:
    """Beside the job queue, every 15 minutes: imports whose worker died marked
    interrupted, questionnaire reminders and expiry, and the reports'
    snapshot brought up to date with the cases changed since."""
    import threading

    from django.db import connection

    from registry3d.intake.services import mark_interrupted
    from registry3d.questionnaires.services import send_reminders
    from registry3d.reports import snapshot

    def sweep():
        while True:
            try:
                # An import on another machine whose worker died shows as
                # interrupted once it has been silent for ten minutes.
                stopped = mark_interrupted()
                if stopped:
                    click.echo(f"{stopped} import(s) stopped before finishing; marked interrupted.")
                counts = send_reminders()
                if any(counts.values()):
                    click.echo(
                        f"questionnaires: {counts['reminded']} reminded, "
                        f"{counts['expired']} expired"
                    )
                snapshot.build()
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                click.echo(f"background sweep failed: {exc}", err=True)
            finally:
                connection.close()
            stop.wait(SWEEP_SECONDS)

    stop = threading.Event()
    threading.Thread(target=sweep, name="questionnaire-reminders", daemon=True).start()


@main.group()
def questionnaire():
    """Physician questionnaires: reminders, expiry and response rates."""


@questionnaire.command("remind")
@needs_django
def questionnaire_remind():
    """Expire questionnaires past their period and send the reminders due (7 and 14 days).

    `registry3d worker` does this every 15 minutes; run it from cron when no
    worker runs.
    """
    from registry3d.questionnaires.services import send_reminders

    counts = send_reminders()
    click.echo(f"{counts['reminded']} reminded, {counts['expired']} expired")


@questionnaire.command("rates")
@click.option("--site", "site_code", default=None, help="One site's code; all sites if left out.")
@needs_django
def questionnaire_rates(site_code):
    """How many questionnaires were sent, opened, answered and expired."""
    from registry3d.questionnaires.services import rates
    from registry3d.sites.models import Site

    site = None
    if site_code:
        site = Site.objects.filter(code=site_code).first()
        if site is None:
            raise click.ClickException(f"No site {site_code}")
    r = rates(site)
    click.echo(
        f"sent {r.sent} · opened {r.opened} · answered {r.answered} · expired {r.expired} · "
        f"waiting {r.waiting} · response rate {r.response_percent}"
    )


# --- reports ----------------------------------------------------------------------------


@main.command()
@click.option("--site", "site_code", default=None, help="The site whose feedback report to write.")
@click.option("--national", "is_national", is_flag=True, help="The national evidence report.")
@click.option(
    "--period",
    required=True,
    help="A quarter (2026Q3), a range of quarters (2025Q4-2026Q3) or a year (2026).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write: .pdf, or .pdf or .csv for the national report.",
)
@needs_django
def report(site_code, is_national, period, out):
    """Write a site's quarterly feedback report or the national evidence report.

    The reports' snapshot is brought up to date first, so the report holds
    every case submitted until now. The site report compares the site with
    the registry and its peers; the national report (--national) gives
    volumes per CPT code and value by indication, region and technology,
    suppressing every figure from fewer than 11 cases.
    """
    from registry3d.reports import national, snapshot
    from registry3d.sites import services

    if bool(site_code) == bool(is_national):
        raise click.ClickException("Give either --site CODE or --national")
    ending = out.suffix.lower()
    allowed = (".pdf", ".csv") if is_national else (".pdf",)
    if ending not in allowed:
        raise click.ClickException(f"--out must end in {' or '.join(allowed)}, not {out.name!r}")
    try:
        filters = national.parse_period(period)
    except national.PeriodError as exc:
        raise click.ClickException(str(exc)) from None
    target_site = services.find_site(site_code) if site_code else None
    if not out.parent.is_dir():
        raise click.ClickException(f"No folder {str(out.parent)!r} to write {out.name} into")
    snapshot.build()
    df = snapshot.load()
    if target_site is not None:
        from registry3d.reports.pdf import site_pdf

        out.write_bytes(site_pdf(target_site, filters, df))
        cases = (filters.apply(df)["site_code"] == target_site.code).sum()
        period_text = national.period_label(filters)
        click.echo(f"Wrote {out} ({target_site.code}, {period_text}, {cases} cases)")
        return
    result = national.national_report(df, filters)
    if ending == ".csv":
        out.write_text(national.to_csv(result), encoding="utf-8", newline="")
    else:
        from registry3d.reports.pdf import national_pdf

        out.write_bytes(national_pdf(result))
    click.echo(
        f"Wrote {out} (national, {result.period}, {result.cases} cases from {result.sites} sites)"
    )


# --- exports -----------------------------------------------------------------------------


@main.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "xlsx", "fhir", "redcap"]),
    default="csv",
    show_default=True,
    help="File format (xlsx, fhir and redcap only with --site).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the files, their dictionary and manifest.json into (new or empty).",
)
@click.option(
    "--site",
    "site_code",
    default=None,
    help="Export this site's own cases as stored; without it, a de-identified research export.",
)
@click.option("--elements", default="", help="Research: elements and groups, comma-separated.")
@click.option("--from-year", type=int, default=None, help="Research: cases from this year.")
@click.option("--to-year", type=int, default=None, help="Research: cases up to this year.")
@click.option("--organ-system", default="", help="Research: cases of this organ system.")
@click.option("--object-type", default="", help="Research: anatomic_model or anatomic_guide.")
@click.option(
    "--only-site", "only_sites", multiple=True, help="Research: cases of this site (repeatable)."
)
@click.option(
    "--free-text",
    is_flag=True,
    help="Research: add free text, screened (an identifiable export, not Safe Harbor).",
)
@click.option("--site-labels", is_flag=True, help="Research: random site labels, not codes.")
@click.option(
    "--months",
    is_flag=True,
    help="Research: keep year and month (an identifiable export, not Safe Harbor).",
)
@click.option(
    "--identifiers",
    is_flag=True,
    help="Research: add case IDs and patient keys (an identifiable export, not Safe Harbor).",
)
@needs_django
def export_cases(
    fmt,
    out,
    site_code,
    elements,
    from_year,
    to_year,
    organ_system,
    object_type,
    only_sites,
    free_text,
    site_labels,
    months,
    identifiers,
):
    """Export cases: de-identified for research, or one site's own cases.

    A research export holds every site's submitted cases under HIPAA Safe
    Harbor (dates to the year, ages of 90 and above as 90+, no free text, no
    case IDs or patient keys): one table per repeating group beside the
    cases table. --free-text, --months or --identifiers make it an
    identifiable export (limited data set), which the pages show to registry
    administrators alone. A site export (--site) holds the
    site's cases as stored, in CSV or XLSX in the import template's columns
    (so it can be edited and imported again) or in Parquet tables. In every
    export, text that looks like a patient identifier is withheld (redact
    it in the case with 'registry3d case redact'). Every export writes
    dictionary.csv and manifest.json (rows, bytes and SHA-256 of each file)
    beside its data and is recorded in the audit trail.
    """
    from registry3d.exports import services as exports
    from registry3d.exports.errors import ExportError
    from registry3d.exports.models import ExportStatus
    from registry3d.sites import services as sites

    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty; name a new or empty folder")
    research_only = {
        "--elements": elements,
        "--from-year": from_year,
        "--to-year": to_year,
        "--organ-system": organ_system,
        "--object-type": object_type,
        "--only-site": only_sites,
        "--free-text": free_text,
        "--site-labels": site_labels,
        "--months": months,
        "--identifiers": identifiers,
    }
    try:
        if site_code:
            given = [name for name, value in research_only.items() if value]
            if given:
                raise click.ClickException(
                    f"{', '.join(given)}: only for research exports (leave out --site)"
                )
            export = exports.request_site_export(
                None, sites.find_site(site_code), fmt, enqueue=False
            )
        else:
            if fmt in ("xlsx", "fhir", "redcap"):
                raise click.ClickException(
                    f"A research export is csv or parquet; {fmt} is for a site's export (--site)"
                )
            options = exports.ResearchOptions(
                elements=[e.strip() for e in elements.split(",") if e.strip()] or None,
                from_year=from_year,
                to_year=to_year,
                organ_system=organ_system,
                object_type=object_type,
                sites=list(only_sites),
                free_text=free_text,
                site_labels=site_labels,
                months=months,
                identifiers=identifiers,
            )
            export = exports.request_research_export(None, options, fmt, enqueue=False)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    with progress_bar("Exporting", "{task.completed} of {task.total} cases") as bar:
        task = bar.add_task("export", total=None)
        manifest = exports.write_export(
            export, out, lambda done, total: bar.update(task, completed=done, total=total)
        )
    export.status = ExportStatus.DONE
    export.manifest = manifest
    export.file_path = str(out)
    export.cases_done = export.cases_total = manifest["cases"]
    export.save()
    if export.kind != "research":
        what = f"{export.site.code} as stored"
    elif export.identifiable:
        what = "identifiable export (limited data set)"
    else:
        what = "de-identified"
    click.echo(
        f"Wrote {len(manifest['files'])} files to {out} ({manifest['cases']} cases; {what}); "
        "see manifest.json"
    )


# --- sites and people -----------------------------------------------------------------


@main.group()
def site():
    """Manage participant sites."""


@site.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The site's full name.")
@click.option("--country", default="US", show_default=True, help="ISO 3166 two-letter code.")
@click.option("--region", default="", help="State, province or region.")
@click.option(
    "--type",
    "facility_type",
    default="other",
    show_default=True,
    help="academic, community, childrens, private_practice, government or other.",
)
@needs_django
def site_add(code, name, country, region, facility_type):
    """Add the participant site CODE (e.g. MIH01)."""
    from registry3d.sites import services

    created = services.add_site(
        code, name, country=country.upper(), region=region, facility_type=facility_type
    )
    click.echo(created.code)


@site.command("list")
@needs_django
def site_list():
    """List the sites, one per line: code, type, name."""
    from registry3d.sites.models import Site

    for s in Site.objects.all():
        click.echo(f"{s.code}\t{s.facility_type}\t{s.name}")


@main.group()
def user():
    """Manage accounts."""


@user.command("add")
@click.argument("email")
@click.option("--password", required=True, help="The account's password.")
@click.option("--name", "full_name", default="", help="Full name.")
@click.option("--site", "site_code", default=None, help="Make the user a member of this site.")
@click.option("--role", default=None, help="Role at that site: viewer, contributor or manager.")
@click.option("--registry-role", default="", help="analyst or admin, across all sites.")
@needs_django
def user_add(email, password, full_name, site_code, role, registry_role):
    """Add an account that logs in with EMAIL."""
    from django.db import transaction

    from registry3d.sites import services

    if bool(site_code) != bool(role):
        raise click.ClickException("--site and --role go together")
    with transaction.atomic():
        target_site = services.find_site(site_code) if site_code else None
        if role:
            services.parse_role(role)
        created = services.add_user(
            email, password, full_name=full_name, registry_role=registry_role
        )
        if target_site is not None:
            services.set_membership(target_site, created, role)
    click.echo(created.email)


@main.group()
def token():
    """Manage API tokens."""


@token.command("create")
@click.option("--user", "email", required=True, help="The member the token acts as.")
@click.option("--site", "site_code", required=True, help="The site it belongs to.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
@click.option("--name", default="Command line", show_default=True, help="What uses it.")
@click.option(
    "--redcap",
    is_flag=True,
    help="A REDCap token (32 hexadecimal characters) for /redcap/api/ instead of /api/.",
)
@needs_django
def token_create(email, site_code, scope, name, redcap):
    """Create an API token and print only the token (shown once)."""
    from registry3d.sites import services
    from registry3d.sites.models import TokenKind

    target_site = services.find_site(site_code)
    owner = services.find_user(email)
    kind = TokenKind.REDCAP if redcap else TokenKind.API
    _, raw = services.create_token(target_site, owner, name=name, scope=scope, kind=kind)
    click.echo(raw)


@token.command("revoke")
@click.argument("prefix")
@click.option("--site", "site_code", required=True, help="The site the token belongs to.")
@needs_django
def token_revoke(prefix, site_code):
    """Revoke the site's token whose first characters are PREFIX."""
    from registry3d.sites import services
    from registry3d.sites.models import ApiToken

    target_site = services.find_site(site_code)
    matches = list(ApiToken.objects.filter(site=target_site, prefix__startswith=prefix[:10]))
    if len(matches) != 1:
        raise click.ClickException(
            f"{len(matches)} tokens of {target_site.code} start with {prefix!r}; give exactly one"
        )
    if matches[0].revoked_at is not None:
        raise click.ClickException(f"Token {matches[0].prefix}… was already revoked")
    services.revoke_token(matches[0])
    click.echo(f"revoked {matches[0].prefix}")


# --- imports ----------------------------------------------------------------------------------


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_code", required=True, help="The site the cases belong to.")
@click.option(
    "--mode",
    type=click.Choice(["all-or-nothing", "valid-rows"]),
    default="all-or-nothing",
    show_default=True,
    help="all-or-nothing writes nothing if any row is invalid.",
)
@click.option(
    "--status",
    "default_status",
    type=click.Choice(["submitted", "draft"]),
    default="submitted",
    show_default=True,
    help="Status of rows without a status column.",
)
@click.option("--preview", is_flag=True, help="Check and count only; write nothing.")
@click.option(
    "--problems",
    "problems_out",
    type=click.Path(dir_okay=False),
    help="Write every problem to this CSV file (row, case_uid, element, code, message).",
)
@needs_django
def import_cases(file, site_code, mode, default_status, preview, problems_out):
    """Check and load a CSV or XLSX file of cases into a site.

    Columns are dictionary elements by name or label (see the import
    template at /dictionary/); repeating groups are numbered columns such as
    prints_2_material. Importing the same file again changes nothing.
    """
    from registry3d.intake import services as intake
    from registry3d.sites import services as sites

    site = sites.find_site(site_code)
    stopped = intake.mark_interrupted()
    if stopped:
        click.echo(
            f"{stopped} earlier import(s) had stopped before finishing; marked interrupted.",
            err=True,
        )
    stored = intake.copy_to_imports(site.code, Path(file))
    batch = intake.create_import(
        site, stored, mode=mode, default_status=default_status, file_name=Path(file).name
    )
    with progress_bar("{task.description}", "{task.completed} rows") as bar:
        task = bar.add_task("Checking", total=None)

        def progress(rows):
            if batch.status == "importing":
                bar.update(task, description="Writing", completed=rows, total=batch.rows)
            else:
                bar.update(task, completed=rows)

        try:
            intake.run_import(batch, preview=preview, progress=progress)
        except intake.ImportError_ as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            # Nothing reads the copy again, a preview's or a stopped import's:
            # running the command again copies the file anew (#15).
            intake.remove_upload(batch)
    if problems_out:
        with open(problems_out, "w", encoding="utf-8", newline="") as out:
            for chunk in intake.problems_csv(batch):
                out.write(chunk)
    delimiter = f", {batch.delimiter}-separated" if batch.delimiter else ""
    click.echo(
        f"{batch.file_name} ({batch.file_format}{delimiter}): {batch.rows} rows — "
        f"{batch.new} new, {batch.changed} changed, {batch.unchanged} unchanged, "
        f"{batch.invalid} invalid"
    )
    if batch.unknown_columns:
        click.echo("Unknown columns, ignored: " + ", ".join(batch.unknown_columns), err=True)
    for problem in batch.problems.all()[:10]:
        click.echo(f"Row {problem.row}, {problem.element or 'row'}: {problem.message}", err=True)
    if batch.invalid > 10:
        click.echo(
            f"… {batch.invalid} invalid rows in all; use --problems FILE for the list", err=True
        )
    if preview:
        click.echo("Preview only: nothing was written.")
    elif batch.status == "refused":
        raise click.ClickException(batch.message)
    else:
        click.echo(f"Wrote {batch.written} cases (import {batch.code}).")


# --- DICOM ------------------------------------------------------------------------------------


@main.group()
def dicom():
    """Read DICOM headers for a case's source imaging."""


@dicom.command("read")
@click.argument("path", type=click.Path(path_type=Path))
@needs_django(check_database=False)
def dicom_read(path):
    """Print the series of a DICOM file, folder or ZIP as JSON (headers only).

    For each series: modality and the suggested imaging code, scanner, slice
    thickness, pixel spacing, kVp or field strength, contrast, body part,
    number of images, description, study year and the imaging elements to
    put on the case. Patient, staff and institution details and UIDs are
    never printed; a series appears only as a keyed fingerprint. A text
    value (description, scanner, body part) that looks like an identifier
    is printed as null and named in the series' "withheld".
    """
    import json

    from registry3d.intake.dicom import DicomError, read_dicom

    try:
        summary = read_dicom(path)
    except DicomError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False))


# --- 3D models --------------------------------------------------------------------------------


@main.group()
def mesh():
    """Measure 3D model files (STL, OBJ, PLY, 3MF) for a case."""


@mesh.command("measure")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--object-type",
    type=click.Choice(["anatomic_model", "anatomic_guide"]),
    default="anatomic_model",
    show_default=True,
    help="What FILE is: CPT units count components of a model, or guides.",
)
@needs_django(check_database=False)
def mesh_measure(file, object_type):
    """Print the size and shape of an STL, OBJ, PLY or 3MF FILE as JSON.

    Triangles, volume (cm³), surface area (cm²), bounding box (mm),
    watertight or not and separate bodies, with the model elements they
    suggest: components, material volume and CPT units (before the unit
    limits per date of service). STL, OBJ and PLY carry no unit, so
    millimetres are assumed; a 3MF file declares its own. A file name that
    looks like an identifier is printed as model.<ext>. Nothing is stored.
    """
    import json

    from registry3d.intake.mesh import MeshError, measure

    try:
        result = measure(file, object_type=object_type)
    except MeshError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


# --- cases ------------------------------------------------------------------------------------


@main.group()
def case():
    """Show, withdraw and redact cases."""


def _find_case(site_code: str, case_uid: str):
    from registry3d.cases import services as case_services
    from registry3d.cases.models import Case
    from registry3d.sites import services

    site = services.find_site(site_code)
    found = Case.objects.filter(site=site, case_uid=case_uid).first()
    if found is None:
        # Quote the argument only when it is a well-formed case ID: one shaped
        # like a date or phone number may be a patient's, and logs keep it.
        shown = case_services.shown_case_uid(case_uid)
        raise click.ClickException(
            f"{site.code} has no case {shown!r}"
            if shown
            else f"{site.code} has no case with that ID"
        )
    return found


@case.command("show")
@click.argument("site_code", metavar="SITE")
@click.argument("case_uid")
@click.option("--history", is_flag=True, help="Include every version with what changed.")
@needs_django
def case_show(site_code, case_uid, history):
    """Print case CASE_UID of SITE as JSON."""
    import json

    found = _find_case(site_code, case_uid)
    out = {
        "site": found.site.code,
        "case_uid": found.case_uid,
        "status": found.status,
        "version": found.version,
        "dictionary_version": found.dictionary_version,
        "patient_key": found.patient_key,
        "withdrawn_reason": found.withdrawn_reason,
        "updated_at": found.updated_at.isoformat(),
        "data": found.data,
    }
    if history:
        out["history"] = [
            {
                "version": v.version,
                "status": v.status,
                "changed_at": v.changed_at.isoformat(),
                "changed_by": v.changed_by.email if v.changed_by else None,
                "via": v.via,
                "note": v.note,
                "changes": v.changed,
            }
            for v in found.versions.select_related("changed_by").order_by("version")
        ]
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


@case.command("withdraw")
@click.argument("site_code", metavar="SITE")
@click.argument("case_uid")
@click.option("--reason", required=True, help="Why it leaves the registry; no patient details.")
@needs_django
def case_withdraw(site_code, case_uid, reason):
    """Withdraw case CASE_UID of SITE; it stays on record with its history."""
    from registry3d.cases.errors import CaseError, InvalidCase
    from registry3d.cases.services import withdraw_case

    found = _find_case(site_code, case_uid)
    try:
        withdrawn = withdraw_case(found, reason)
    except InvalidCase as exc:
        raise click.ClickException(exc.problems[0].message) from None
    except CaseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"withdrew {withdrawn.site.code}/{withdrawn.case_uid} (version {withdrawn.version})")


@case.command("redact")
@click.argument("site_code", metavar="SITE")
@click.argument("case_uid")
@click.option(
    "--element",
    "path",
    required=True,
    help="The text to remove: ua_comment, anatomic_parts[2].comment or withdrawn_reason.",
)
@click.option(
    "--reason", required=True, help="Why it is removed; no patient details, not the value."
)
@needs_django
def case_redact(site_code, case_uid, path, reason):
    """Replace a text value with [redacted] in case CASE_UID of SITE and all its versions."""
    from registry3d.cases.errors import CaseError
    from registry3d.cases.redaction import redact_case

    found = _find_case(site_code, case_uid)
    try:
        done = redact_case(found, path, reason)
    except CaseError as exc:
        raise click.ClickException(str(exc)) from None
    versions = ", ".join(str(v) for v in done.versions) or "none"
    click.echo(
        f"redacted {done.element} in {done.case.site.code}/{done.case.case_uid} "
        f"(versions {versions})"
    )


@main.command()
@click.option("--site", "site_code", required=True, help="The site whose key to use.")
@click.argument("mrns", nargs=-1, required=True)
@needs_django
def pseudonymize(site_code, mrns):
    """Print the pseudonymous patient key of each MRN at SITE, one per line.

    The same MRN at the same site always gives the same key; the MRN itself
    is neither stored nor logged. Use '-' to read MRNs from standard input,
    one per line, so they stay out of the shell history.
    """
    from registry3d.lib.pseudonym import patient_key
    from registry3d.sites import services

    site = services.find_site(site_code)
    values = list(mrns)
    if values == ["-"]:
        values = [line.strip() for line in sys.stdin if line.strip()]
    for mrn in values:
        try:
            click.echo(patient_key(site.code, mrn))
        except ValueError as exc:
            raise click.ClickException(f"An MRN was refused: {exc}") from None


# --- dictionary ---------------------------------------------------------------------------


@main.group()
def dictionary():
    """Check, compare and publish data dictionary files."""


def _load_dictionary_file(path: str):
    from registry3d.dictionary.errors import DictionaryError
    from registry3d.dictionary.registry import load

    try:
        return load(Path(path))
    except DictionaryError as exc:
        raise click.ClickException(str(exc)) from None


@dictionary.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@needs_django(check_database=False)
def dictionary_check(file):
    """Check a dictionary FILE; print a summary, or the file, line and problem."""
    loaded = _load_dictionary_file(file)
    d = loaded.dictionary
    items = len(d.all_elements) - len(d.elements)
    click.echo(
        f"{d.name} {d.version}: {len(d.sections)} sections, {len(d.elements)} elements "
        f"(+{items} in groups), {len(d.value_sets)} value sets, {len(d.rules)} rules, "
        f"{len(d.derived)} derived values: OK"
    )


@dictionary.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@needs_django(check_database=False)
def dictionary_diff(old, new):
    """Say what changed from dictionary file OLD to NEW, one line per part."""
    from registry3d.dictionary.versions import diff

    before = _load_dictionary_file(old).dictionary
    after = _load_dictionary_file(new).dictionary
    click.echo(f"{before.version} → {after.version}")
    differences = diff(before, after)
    for difference in differences:
        click.echo(str(difference))
    if not differences:
        click.echo("no differences")


@dictionary.command("publish")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@needs_django(check_database=False)
def dictionary_publish(file):
    """Record the fingerprints of the dictionary's version as published (final)."""
    from registry3d.dictionary.registry import dictionary_path
    from registry3d.dictionary.versions import publish

    d = _load_dictionary_file(file or str(dictionary_path())).dictionary
    if publish(d):
        click.echo(f"published {d.name} {d.version}")
    else:
        click.echo(f"{d.name} {d.version} was already published")


@dictionary.command("upgrade-cases")
@click.option("--batch-size", default=500, show_default=True, help="Cases carried per transaction.")
@needs_django
def dictionary_upgrade_cases(batch_size):
    """Carry stored cases of an older dictionary version forward to the one in force."""
    if batch_size < 1:
        raise click.ClickException("--batch-size must be at least 1")
    result = _upgrade_cases(batch_size)
    if not result.carried:
        click.echo(f"Every case follows dictionary {result.version} already.", err=True)


def _upgrade_cases(batch_size: int = 500):
    """Carry older cases forward (see registry3d.cases.upgrade); say what was done."""
    from registry3d.cases.models import Case
    from registry3d.cases.upgrade import older_versions, upgrade_cases
    from registry3d.dictionary import registry
    from registry3d.dictionary.errors import DictionaryError

    try:
        version = registry.current().dictionary.version
    except DictionaryError as exc:
        raise click.ClickException(f"The dictionary in force does not load: {exc}") from None
    total = Case.objects.filter(dictionary_version__in=older_versions(version)).count()
    if not total:
        return upgrade_cases(batch_size=batch_size)
    with progress_bar("Carrying cases forward", "{task.completed} of {task.total}") as bar:
        task = bar.add_task("carry", total=total)
        result = upgrade_cases(batch_size=batch_size, progress=lambda done: bar.advance(task, done))
    click.echo(f"Carried {result.carried} cases forward to dictionary {version}.", err=True)
    for site_code, case_uid, path, code in result.problems:
        click.echo(f"  {site_code}/{case_uid}: {path} ({code}); correct the case", err=True)
    return result


@dictionary.command("generate")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder to write the generated files into.",
)
@needs_django(check_database=False)
def dictionary_generate(out):
    """Write the files generated from the dictionary (JSON Schema, REDCap, templates)."""
    from registry3d.dictionary import registry
    from registry3d.dictionary.generators import GENERATED_FILES

    d = registry.current().dictionary
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in GENERATED_FILES.items():
        (folder / name).write_text(make(d), encoding="utf-8", newline="")
        click.echo(str(folder / name))


@dictionary.command("from-redcap")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the proposed dictionary file here (its reference tables are copied beside it).",
)
@needs_django(check_database=False)
def dictionary_from_redcap(file, out):
    """Propose a new dictionary version from a REDCap data dictionary FILE (CSV).

    Prints what the file changes; with --out writes the proposed dictionary
    file. A row that cannot be carried is refused with its row number, and
    nothing is written.
    """
    from registry3d.dictionary import registry
    from registry3d.redcap import proposals
    from registry3d.redcap.errors import ProposalRefused

    dictionary = registry.current().dictionary
    try:
        proposal = proposals.propose(Path(file).read_bytes(), dictionary)
    except ProposalRefused as exc:
        raise click.ClickException(
            "the file cannot become a dictionary version; nothing was written:\n"
            + "\n".join(str(p) for p in exc.problems)
        ) from None
    click.echo(f"{proposal.base_version} → {proposal.version}")
    for change in proposal.changes:
        click.echo(change)
    for note in proposal.notes:
        click.echo(f"note: {note}")
    if out:
        for path in proposals.write_files(proposal.yaml_text, dictionary, Path(out)):
            click.echo(f"wrote {path}")


# --- audit ------------------------------------------------------------------------------


@main.group()
def audit():
    """Check the audit trail, and take old case values out of it."""


@audit.command("verify")
@needs_django
def audit_verify():
    """Check the hash chain of the whole audit trail.

    Exits 1 and names the first broken event when any event was changed,
    removed or inserted outside the registry.
    """
    from registry3d.audit.services import verify_chain

    report = verify_chain()
    if not report.ok:
        click.echo(
            f"Audit trail BROKEN at event #{report.broken_seq}: {report.reason} "
            f"({report.checked} events before it are intact)",
            err=True,
        )
        sys.exit(1)
    click.echo(f"Audit trail intact: {report.checked} events verified.")
    for rebase in report.rebases:
        click.echo(
            f"Re-based at #{rebase['seq']} ({rebase['at']:%Y-%m-%d %H:%M} UTC, "
            f"{rebase['by'] or 'system'}): events from #{rebase['from_seq']} were rewritten "
            f"to hold digests instead of case values; the head before was "
            f"#{rebase['old_head_seq']} {rebase['old_head_hash']}."
        )


@audit.command("scrub-values")
@click.option("--yes", is_flag=True, help="Do it; without it, nothing is changed.")
@needs_django
def audit_scrub_values(yes):
    """Replace case values in events recorded before digests, re-basing the chain once.

    Events written before the trail held keyed digests copied case values
    (comments, withdrawal reasons, answers) into it. This rewrites them to
    digests, hashes the chain again from the first one, and records an
    audit.rebased event with the head before; 'audit verify' reports it.
    Backups taken before keep the old chain.
    """
    from registry3d.audit.scrub import scrub_values

    if not yes:
        raise click.ClickException(
            "This rewrites old audit events and re-bases the chain; run it again with --yes"
        )
    done = scrub_values()
    if done.event is None:
        click.echo("No audit event holds case values; nothing changed.")
        return
    click.echo(
        f"Rewrote {done.rewritten} events from #{done.first_seq} to hold digests; "
        f"hashed {done.rehashed} again; recorded the re-base as #{done.event.seq}."
    )


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def manage(args):
    """Run a Django management command (for administrators), e.g. 'manage check --deploy'."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["registry3d manage", *args])


# --- backup, restore, verify, doctor -------------------------------------------------------


def _ops_error(func):
    """Turn a refusal of registry3d.ops into one line and exit 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from registry3d.ops import OpsError

        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None

    return wrapper


def _console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.width = 120
    return console


@main.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The backup file to write (a tar archive, readable by its owner only).",
)
@needs_django
@_ops_error
def backup(out):
    """Write a consistent backup of the running registry to one file.

    PostgreSQL is dumped with pg_dump, SQLite copied with its online backup;
    the file also holds manifest.json (rows and checksum of every table,
    migrations, the audit trail's head, all from the same snapshot) and the
    pseudonym key when it is kept in var/. Log-in sessions are left out.
    """
    from registry3d.ops.backup import backup as write_backup

    result = write_backup(out)
    manifest = result.manifest
    rows = sum(table["rows"] for table in manifest["tables"].values())
    key = " and the pseudonym key" if manifest["pseudonym_key"]["included"] else ""
    click.echo(
        f"Wrote {result.path} ({manifest['engine']}, {len(manifest['tables'])} tables, "
        f"{rows} rows, {manifest['audit']['events']} audit events{key}; "
        f"{result.size / 1024 / 1024:.1f} MB)"
    )
    if not manifest["pseudonym_key"]["included"]:
        click.echo(f"Note: {manifest['pseudonym_key']['note']}.", err=True)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@needs_django(check_database=False)
@_ops_error
def restore(file):
    """Restore backup FILE into the configured, empty database, then verify it.

    Refuses a database that already holds registry data. Stop the server
    while restoring. Exits 1 if the restored data do not match the backup.
    """
    from registry3d.ops.backup import restore as restore_backup

    result = restore_backup(file)
    manifest = result.manifest
    click.echo(
        f"Restored {Path(file).name} ({manifest['engine']} backup of "
        f"{manifest['created_at']}, registry3d {manifest['registry3d_version']})."
    )
    for note in result.notes:
        click.echo(note, err=True)
    _verify_and_report(manifest)
    try:
        require_migrated()
    except click.ClickException:
        click.echo("This registry3d has newer migrations: run 'registry3d init' next.", err=True)


@main.command()
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A backup file, or its manifest.json, to compare the database with.",
)
@needs_django(check_database=False)
@_ops_error
def verify(manifest_path):
    """Check the database: the audit hash chain, and counts and checksums against a backup.

    Without --manifest, prints the rows of each table. Exits 1 on any
    mismatch or a broken audit chain.
    """
    from registry3d.ops.backup import read_manifest

    manifest = read_manifest(manifest_path) if manifest_path else None
    require_migrated()
    _verify_and_report(manifest)


def _verify_and_report(manifest) -> None:
    from rich.table import Table

    from registry3d.ops.verify import verify as run_verify

    result = run_verify(manifest)
    console = _console()
    tables = result.state["tables"]
    if manifest is None:
        table = Table(title="Rows per table")
        table.add_column("Table", no_wrap=True)
        table.add_column("Rows", justify="right")
        for name, numbers in tables.items():
            table.add_row(name, str(numbers["rows"]))
        console.print(table)
    if result.mismatches:
        table = Table(title="Mismatches")
        table.add_column("What", no_wrap=True)
        table.add_column("Expected")
        table.add_column("Found")
        for mismatch in result.mismatches:
            table.add_row(mismatch.what, mismatch.expected, mismatch.found)
        console.print(table)
    chain = (
        f"audit trail intact ({result.chain_checked} events)"
        if result.chain_ok
        else f"audit trail BROKEN: {result.chain_reason}"
    )
    if manifest is None:
        click.echo(f"{len(tables)} tables counted; {chain}.")
    elif result.ok:
        click.echo(
            f"All {len(tables)} tables match the backup of {manifest['created_at']}; {chain}."
        )
    if not result.ok:
        count = len(result.mismatches)
        click.echo(
            f"Verification FAILED: {count} mismatch{'es' if count != 1 else ''} "
            f"({', '.join(m.what for m in result.mismatches[:5])}).",
            err=True,
        )
        sys.exit(1)


@main.command()
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too (for cron and monitoring).")
@needs_django(check_database=False)
def doctor(strict):
    """Check this deployment and say what to fix, one line per check.

    Settings, 'check --deploy', the database, the background worker, mail,
    disk space and recent backups. Exits 1 if any check FAILs, or with
    --strict if any WARNs.
    """
    from registry3d.ops.doctor import FAIL, run

    colours = {"OK": "green", "WARN": "yellow", "FAIL": "red"}
    results = run()
    width = max(len(check.name) for check in results)
    for check in results:
        status = click.style(f"{check.status:<4}", fg=colours[check.status], bold=True)
        line = f"{status}  {check.name:<{width}}  {check.message}"
        if check.fix and check.status != "OK":
            line += f" -> fix: {check.fix}"
        click.echo(line)
    failed = sum(check.status == FAIL for check in results)
    warned = sum(check.status == "WARN" for check in results)
    click.echo(f"{failed} failed, {warned} warnings, {len(results) - failed - warned} ok.")
    if failed or (strict and warned):
        sys.exit(1)


if __name__ == "__main__":
    main()
