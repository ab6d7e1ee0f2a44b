"""The SQLAlchemy example: a model whose tenant column the database fills, sessions that take the
context from the request's host, a pool that resets it. The three tenancy lines are marked."""

from __future__ import annotations

import uuid

import tenancy.sqlalchemy as tsa
from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "sa_project"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = tsa.tenant_column()  # tenancy (1): filled by the database
    name: Mapped[str] = mapped_column(String(100))


class Task(Base):
    __tablename__ = "sa_task"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = tsa.tenant_column()
    project_id: Mapped[int] = mapped_column(ForeignKey("sa_project.id"))
    title: Mapped[str] = mapped_column(String(100))


def make_sessions(url: str) -> sessionmaker[Session]:
    engine = create_engine(url)
    tsa.install(engine)  # tenancy (2): a connection returned to the pool has no context
    sessions = sessionmaker(engine)
    tsa.scope_sessions(sessions)  # tenancy (3): every transaction takes the context of session.info
    return sessions


def project_names(sessions: sessionmaker[Session], host: str) -> list[str]:
    with sessions(info={"tenancy": {"host": host}}) as session, session.begin():
        return sorted(session.scalars(select(Project.name)))


def add_project(
    sessions: sessionmaker[Session], host: str, name: str, tenant_id: uuid.UUID | None = None
) -> int:
    with sessions(info={"tenancy": {"host": host}}) as session, session.begin():
        project = Project(name=name) if tenant_id is None else Project(name=name, tenant_id=tenant_id)
        session.add(project)
        session.flush()
        return project.id
