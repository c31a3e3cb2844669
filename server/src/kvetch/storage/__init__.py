"""kvetch.storage"""
