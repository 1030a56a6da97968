-- Reference: rebuilt every time; when its rows change, the build is full
-- Grain: one row per activity type and direction as the facts use them.
-- activity_type: call, email, meeting, task, todo or other
-- direction: incoming or outgoing for calls and e-mails, else NULL
-- activity_type_name: a readable name of the type and direction
SELECT *
FROM (VALUES
    ('call', 'incoming', 'Incoming call'), ('call', 'outgoing', 'Outgoing call'), ('call', NULL, 'Call'),
    ('email', 'incoming', 'Incoming e-mail'), ('email', 'outgoing', 'Outgoing e-mail'), ('email', NULL, 'E-mail'),
    ('meeting', NULL, 'Meeting'), ('task', NULL, 'Task'), ('todo', NULL, 'To-do'), ('other', NULL, 'Other')
) AS t(activity_type, direction, activity_type_name)
