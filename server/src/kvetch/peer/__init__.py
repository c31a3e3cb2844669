"""kvetch.peer"""
