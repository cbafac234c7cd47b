"""Flask CLI commands: create-user, seed-demo (and those of later areas)."""

import click
from flask import Flask

from choices import Role
from models import Village, db
from services import backup as backup_service


def register_cli(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.option("--username", prompt="登录名")
    @click.option(
        "--role", type=click.Choice([r.value for r in Role]), default=Role.ADMIN.value, show_default=True
    )
    @click.option("--village", "village_name", default=None, help="儿童主任所属村（社区）名称")
    @click.password_option(prompt="密码（至少10个字符）")
    def create_user_command(username, role, village_name, password):
        """Create an account (the first admin of a real deployment)."""
        from services.accounts import create_user
        from services.validation import InvalidInput

        village_id = None
        if village_name:
            village_id = db.session.scalar(db.select(Village.id).where(Village.name == village_name))
            if village_id is None:
                raise click.ClickException(f"找不到村（社区）：{village_name}")
        try:
            user = create_user(username, password, role, village_id=village_id)
        except InvalidInput as bad:
            raise click.ClickException(str(bad)) from None
        db.session.commit()
        click.echo(f"已创建账号 {user.username}（{Role(role).label}）")

    @app.cli.command("seed-demo")
    @click.option("--children", default=240, show_default=True, help="演示儿童人数")
    @click.option("--if-empty", is_flag=True, help="仅当数据库中还没有任何账号时写入")
    def seed_demo_command(children, if_empty):
        """Write deterministic, obviously fictional demo data."""
        from models import User
        from seeds.demo import seed_demo

        if if_empty and db.session.scalar(db.select(User.id).limit(1)) is not None:
            click.echo("数据库已有数据，跳过演示数据")
            return
        summary = seed_demo(children=children)
        click.echo("演示数据已写入：" + "，".join(f"{k} {v}" for k, v in summary.items()))

    @app.cli.command("seed-reference")
    def seed_reference_command():
        """Write the seeded reference rows (categories, rule tables, settings) where missing."""
        from seeds.reference import seed_reference

        seed_reference()
        db.session.commit()
        click.echo("基础数据已就绪")

    @app.cli.command("run-alert-rules")
    @click.option(
        "--today",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="按此日期运行（YYYY-MM-DD），默认今天",
    )
    def run_alert_rules_command(today):
        """Run the alert rules once; safe to repeat (an open alert is never raised twice).

        \b
        Schedule it hourly, e.g. Linux cron:
          0 * * * *  cd /opt/tonghu && .venv/bin/flask --app app run-alert-rules
        Windows task scheduler (任务计划程序), a task repeating every hour running:
          C:\\tonghu\\.venv\\Scripts\\flask.exe --app app run-alert-rules  (start in C:\\tonghu)
        The alert centre also runs the rules when the last run is over an hour old.
        """
        from services import clock
        from services.alerts import run_rules_exclusively

        if today is not None:
            clock.set_today(today.date())
        summary = run_rules_exclusively(clock.today(), clock.now())
        if summary is None:
            click.echo("另一次预警规则运行正在进行，本次跳过")
            return
        click.echo(
            f"预警规则已运行（{clock.today():%Y-%m-%d}）：新增 {summary.raised}，"
            f"条件已解除 {summary.cleared}，再次出现 {summary.recurred}，当前成立 {summary.holding}"
        )

    @app.cli.command("backup")
    @click.argument("path", required=False, type=click.Path(dir_okay=False))
    @click.option(
        "--keep",
        default=backup_service.KEEP_DEFAULT,
        show_default=True,
        help="写入默认备份目录时，只保留最新的这么多份（0 表示全部保留）",
    )
    def backup_command(path, keep):
        """Back up the whole database, consistently, while the app keeps running.

        \b
        SQLite: SQLite's online backup API (WAL included) into PATH, by default
        instance/backups/tonghu-YYYYMMDD-HHMMSS.db (or $BACKUP_DIR).
        PostgreSQL: pg_dump --format=custom into PATH (.dump); without pg_dump the command is printed.
        """
        from pathlib import Path

        default = path is None
        if backup_service.is_sqlite():
            target = Path(path) if path else backup_service.default_path(app.instance_path)
            try:
                written = backup_service.backup_sqlite(target)
            except backup_service.BackupRefused as refused:
                raise click.ClickException(str(refused)) from None
        else:
            target = Path(path) if path else backup_service.default_path(app.instance_path, suffix=".dump")
            try:
                written = backup_service.backup_postgres(target)
            except backup_service.BackupRefused as refused:
                raise click.ClickException(str(refused)) from None
            if written is None:
                command = backup_service.shown(backup_service.pg_dump_command(target))
                raise click.ClickException(
                    "本机没有 pg_dump（PostgreSQL 客户端），请在装有它的机器上运行（密码用环境变量 PGPASSWORD 提供）：\n"
                    + command
                )
        size = written.stat().st_size / 1024 / 1024
        click.echo(f"已备份到 {written}（{size:.1f} MB）")
        if default and keep:
            for old in backup_service.prune(written.parent, keep):
                click.echo(f"已删除旧备份 {old.name}")

    @app.cli.command("restore")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--force", is_flag=True, help="当前数据库比备份新时也恢复（此后的修改全部丢失）")
    def restore_command(path, force):
        """Restore the database from a backup made by `backup`. Stop the app first.

        \b
        Checks that the file is a 童护 backup whose schema this version knows, runs
        PRAGMA integrity_check and foreign_key_check on it, refuses to replace a database written
        after the backup unless --force, keeps the replaced database (before-restore-….db beside it;
        on PostgreSQL the database <name>_before_restore_…), and upgrades an older schema.
        """
        from pathlib import Path

        from services import audit

        try:
            if backup_service.is_sqlite():
                restored = backup_service.restore_sqlite(Path(path), force=force)
            else:
                restored = backup_service.restore_postgres(Path(path), force=force)
                if restored is None:
                    command = backup_service.shown(backup_service.pg_restore_command(Path(path)))
                    raise click.ClickException(
                        "本机没有 pg_restore（PostgreSQL 客户端）。停止童护后，在装有它的机器上运行：\n"
                        + command
                        + "\n然后运行 flask --app app db upgrade"
                    )
        except backup_service.BackupRefused as refused:
            raise click.ClickException(str(refused)) from None
        audit.record(db.session, "restore", summary=f"从备份恢复整个数据库：{Path(path).name}")
        db.session.commit()
        if restored.safety_copy:
            click.echo(f"恢复前的数据库已另存为 {restored.safety_copy}")
        if restored.upgraded:
            click.echo(f"备份的数据库版本 {restored.revision} 较旧，已升级到当前版本")
        click.echo(f"已从 {path} 恢复数据库")

    @app.cli.command("storage-check")
    @click.option("--create-bucket", is_flag=True, help="对象存储：存储桶不存在时创建")
    def storage_check_command(create_bucket):
        """Write, read back and delete a test object in the attachment storage (local disk or S3)."""
        import contextlib
        import secrets

        from services import storage

        try:
            store = storage.for_app(app)
            if create_bucket and isinstance(store, storage.S3Storage):
                # it may exist already, or these keys may not create one: the check below says
                with contextlib.suppress(storage.StorageError):
                    store.create_bucket()
            key = "check/" + secrets.token_hex(8)
            payload = secrets.token_bytes(64)
            store.put(key, payload, "application/octet-stream")
            same = store.read(key) == payload
            store.delete(key)
        except storage.StorageError as error:
            raise click.ClickException(f"附件存储不可用：{error}") from None
        if not same:
            raise click.ClickException("附件存储读回的内容与写入的不一致")
        click.echo(f"附件存储可用：{store.describe()}")

    @app.cli.command("indicators-readme")
    @click.option("--check", is_flag=True, help="只检查 README 是否与指标声明一致，不改写")
    def indicators_readme_command(check):
        """Rewrite README.md's table of indicators from services/indicators.py (the one source)."""
        from pathlib import Path

        from services.indicators import rewrite_readme

        path = Path(app.root_path) / "README.md"
        text = path.read_text(encoding="utf-8")
        fresh = rewrite_readme(text)
        if check:
            if fresh != text:
                raise click.ClickException("README.md 的指标表与 services/indicators.py 的声明不一致")
            click.echo("README.md 的指标表与声明一致")
            return
        path.write_text(fresh, encoding="utf-8")
        click.echo("README.md 的指标表已按声明重写")

    @app.cli.command("attachments-backup")
    @click.option("--to", "target", required=True, type=click.Path(file_okay=False), help="备份目录")
    def attachments_backup_command(target):
        """Copy the attachment objects not yet in TARGET there (local disk or S3 alike).

        Objects are written once under random names and never changed, so repeating it copies only
        the new ones. Run it after `flask backup`: every row of that database backup then has its file.
        """
        from services import storage

        try:
            copied, kept = storage.mirror(storage.for_app(app), target)
        except storage.StorageError as error:
            raise click.ClickException(f"附件备份失败：{error}") from None
        click.echo(f"附件已备份到 {target}：新复制 {copied} 个文件，已有 {kept} 个")

    @app.cli.command("attachments-verify")
    def attachments_verify_command():
        """Check that every attachment row has its file (e.g. after restoring a database backup)."""
        from services import attachments, storage

        try:
            result = attachments.verify(storage.for_app(app))
        except storage.StorageError as error:
            raise click.ClickException(f"附件存储不可用：{error}") from None
        click.echo(
            f"附件 {result['rows']} 个；缺少文件 {len(result['missing'])} 个；"
            f"存储中无记录对应的文件 {result['orphans']} 个"
        )
        for attachment_id, key in result["missing"][:50]:
            click.echo(f"  缺少：附件编号 {attachment_id}（{key}）")
        if result["missing"]:
            raise click.ClickException("有附件缺少文件：请从附件备份目录复制回附件存储")
