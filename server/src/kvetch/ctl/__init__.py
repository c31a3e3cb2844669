"""kvetch.ctl"""
