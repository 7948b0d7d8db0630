"""``Shared``: one object per service container, the same for all its workers.

A worker's dependencies are made for that worker; a job that outlives one
call (a rebuild in progress, its progress, what earlier checks saw) needs one
place every worker of the instance sees. nameko has no such provider built in.

    class RebuilderService:
        job = Shared(RebuildJob)    # self.job is the instance's one RebuildJob
"""
from nameko.extensions import DependencyProvider


class Shared(DependencyProvider):
    def __init__(self, factory):
        self.factory = factory

    def setup(self):
        self.shared = self.factory()

    def get_dependency(self, worker_ctx):
        return self.shared
