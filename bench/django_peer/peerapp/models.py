"""The peer's models, as django-scim2's README builds them: a user with the SCIM user mixin's
fields (scim_id, scim_external_id, scim_username) on Django's AbstractUser, and a group with
the SCIM group mixin's, related by `scim_groups` (which the user adapter reads for `groups`)."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class Group(AbstractSCIMGroupMixin):
    name = models.CharField(max_length=254, unique=True)


class User(AbstractSCIMUserMixin, AbstractUser):
    scim_groups = models.ManyToManyField(Group, blank=True)
